"""Example apps for asgiws."""
