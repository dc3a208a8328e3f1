"""Browser tests (make test-browser): the built book and JupyterLab in headless Chromium."""
