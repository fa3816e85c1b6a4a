"""Training: recipes, the training loop, augmentation and the model cards."""
