"""The embedded mode's processes and the composition root for both modes."""
