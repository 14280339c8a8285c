"""Vision plugin: image encoders (torchvision backbones, a small CNN), image classification,
and image+text scenarios on synthetic scenes."""
