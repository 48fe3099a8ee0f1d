"""Sequences: one visit made of ordered segments (a cut, then a colour), each segment
with its own member of staff and resources."""
