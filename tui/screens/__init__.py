"""The dashboard's modal screens: help, settings, the path prompt, the quit confirmation."""
