"""Attention hooks for diffusers UNets: one controller protocol for every method."""
