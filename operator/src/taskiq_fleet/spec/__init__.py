"""The pool specification shared by the operator and the local supervisor (pydantic)."""
