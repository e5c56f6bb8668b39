"""Example Starlette app served by asgiws: `make run`, then open http://127.0.0.1:8000/."""
