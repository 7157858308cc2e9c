"""The read side: the SCIM read model and the machinery that keeps it caught up."""
