"""Inference on users' videos: what is built on a trained model (explanations, behaviour events, ...)."""
