"""Task packages (GAN, NAS, adversarial training, style transfer) built on `sabn`."""
