"""Training one model: the trial's fit loop, its callbacks, checked weight loading."""
