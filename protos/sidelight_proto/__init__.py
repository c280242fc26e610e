"""The contract between the Sidelight operator and its sidecars (generated code in v1/)."""
