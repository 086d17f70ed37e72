"""The data model, the ground floor: sample ids, carried columns, hashing, the output
layout, the manifest and drift. It imports nothing above it."""
