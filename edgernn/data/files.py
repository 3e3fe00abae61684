"""Paths of the small data files shipped with edgernn (see files/SOURCES.md)."""

from pathlib import Path

FILES = Path(__file__).parent / "files"
CO2_CSV = FILES / "co2_weekly.csv"
DIGITS_CSV_GZ = FILES / "digits.csv.gz"
