"""Certified unlearning: methods whose forgetting comes with a proof (issue 37).

- :mod:`.newton_removal`: certified removal for an L2-regularised logistic head by one
  Newton step per removal under objective perturbation (Guo et al., ICML 2020);
- :mod:`.descent_to_delete`: perturbed projected gradient descent whose published noise
  certifies each deletion (Neel, Roth and Sharifi-Malvajerdi, ALT 2021), on the same head;
- :mod:`.features`: the head's features, from a ``cnn1d`` trained on a separate (public)
  MNIST-1D draw, so the guarantee covers the whole model;
- :mod:`.bound_check`: whether an attack's threshold tests respect a certified
  (epsilon, delta) bound, with a lower confidence bound on the largest excess.

A certified method trains its own model (the guarantee covers the mechanism, training
included), so it lives beside :mod:`unlearnlib.methods`, whose methods unlearn a model
trained by the shared recipe.
"""
