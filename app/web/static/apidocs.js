// The API's reference page (/docs): Swagger UI served from our own host (the swagger-ui-bundle
// package), reading the OpenAPI document with the page's session cookie. No outside CDN.
/* global SwaggerUIBundle */
SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
