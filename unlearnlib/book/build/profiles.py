"""Book profiles (``book/profiles.yml``): profile -> notebook file name -> the papermill
parameters it runs with."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

#: Paths relative to the book root (the folder holding ``_config.yml``).
PROFILES_FILE = Path("book") / "profiles.yml"


def load_profiles(root: Path | str = ".") -> dict[str, dict[str, dict[str, Any]]]:
    """Read ``<root>/book/profiles.yml``: profile -> notebook file name -> parameters."""
    path = Path(root) / PROFILES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No book profiles at {path}; expected a YAML mapping "
                                "profile -> notebook file name -> papermill parameters.")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map profile names to notebooks; got {type(data).__name__}.")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for profile, notebooks in data.items():
        notebooks = notebooks or {}
        if not isinstance(notebooks, dict):
            raise ValueError(f"Profile {profile!r} in {path} must map notebook file names to parameters.")
        out[str(profile)] = {}
        for name, params in notebooks.items():
            if params is not None and not isinstance(params, dict):
                raise ValueError(f"Parameters of {name!r} in profile {profile!r} ({path}) must be a mapping; "
                                 f"got {params!r}.")
            out[str(profile)][str(name)] = dict(params or {})
    return out


def _repo_profiles() -> dict[str, dict[str, dict[str, Any]]]:
    try:
        return load_profiles(Path(__file__).resolve().parents[3])
    except FileNotFoundError:  # installed without the book sources
        return {}


#: The profiles of this checkout's ``book/profiles.yml`` (empty when installed without it).
PROFILES: dict[str, dict[str, dict[str, Any]]] = _repo_profiles()


def check_profile(profile: str, profiles: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the allowed profiles when ``profile`` is not one of them."""
    if profile not in profiles:
        raise ValueError(f"Unknown book profile {profile!r}; allowed: {', '.join(profiles) or '(none)'} "
                         f"(defined in {PROFILES_FILE}).")
