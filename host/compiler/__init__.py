"""PyTorch front end, decomposition, tile planner and whole-network programs."""
