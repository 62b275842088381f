"""Microgrid part of HashGrid: SunSpec and Victron readers/writers, surplus maths."""
