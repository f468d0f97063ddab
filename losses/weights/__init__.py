"""Pretrained backbones from the package registry: pinned sources, safe reading, verified parts."""
