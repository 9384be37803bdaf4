"""The records and the files they live in: records, errors, JSON Lines, config files, manifests,
run locks, output folders. Imports no other room of judge."""
