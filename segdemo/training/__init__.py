"""Training: recipes, the training loop, augmentation, model cards, the live (in-app)
training worker and instance segmentation."""
