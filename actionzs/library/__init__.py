"""A library of videos: indexed once, then searched and re-labelled without decoding."""
