"""The one pipeline definition, its local runner, and (later) its Step Functions rendering."""
