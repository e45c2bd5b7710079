"""Multi-stage experiments behind the evidence in docs/, as library functions (each also a
``morec`` subcommand): :mod:`.credit_training` (does relabelling episodic rewards pay off in
training?) and :mod:`.generalisation` (MOREC's claim against the MuJoCo oracle)."""
