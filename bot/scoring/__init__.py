"""The figures: the endorsement formula and ranking, the living standards, progress over
weeks, self-rating bands, and the small-group rule every figure about people obeys."""
