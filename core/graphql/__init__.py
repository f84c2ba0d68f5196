"""The GraphQL API: a schema generated from metadata, reads compiled to SQL."""
