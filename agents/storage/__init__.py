"""Content-addressed storage: IPFS-compatible CIDs, CAR export, local and Kubo stores, metadata."""
