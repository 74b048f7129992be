"""The HTTP edge: requests and responses, pages, forms and their anti-forgery check, the OpenAPI document."""
