"""The agent daemons: each is one or two `Stage`s over the shared journal (see `jobs` for the
stages an asset passes), runnable alone (`proofmint agent NAME`) or all in one process
(`proofmint up`)."""
