"""Expert sources: files in published formats, or live expert runs of an environment (`registry`)."""
