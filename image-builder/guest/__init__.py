"""Files the image builder puts into lab images (guest side, standard library only)."""
