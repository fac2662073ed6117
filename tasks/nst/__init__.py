"""Arbitrary neural style transfer (paper §2.4): AdaIN vs SaAdaIN (and a style-id-conditioned SaIN) on a frozen
VGG-19 encoder with a trained decoder. ``networks`` holds the models and losses, ``stylize`` the inference core."""
