"""Policy learners on tianshou (MOPO, MOBILE), each with MOREC on or off."""
