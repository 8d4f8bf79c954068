"""The synthetic anatomical generator: skull/face pairs with known ground truth."""
