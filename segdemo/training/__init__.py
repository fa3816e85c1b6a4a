"""Training: recipes, the training loop, augmentation and the live (in-app) training worker."""
