"""Fixed-point units shared by the keeper modules."""

__all__ = ["WAD"]

WAD: int = 10**18
"""Fixed-point unit of USD values, prices and fractions (18 decimals)."""
