"""Ensemble dynamics models, termination functions and the MuJoCo oracle (imports neither
`morec` nor `algos`)."""
