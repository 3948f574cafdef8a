"""Synthetic and public RCT data sets for budget allocation."""

from ._public import load_criteo_uplift, load_hillstrom
from ._synthetic import make_marketing_rct

__all__ = ["make_marketing_rct", "load_hillstrom", "load_criteo_uplift"]
