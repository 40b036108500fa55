//! Synthetic head-like cases with tumours, so brainseg runs with no data at all (the demo, tests).
