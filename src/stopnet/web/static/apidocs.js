/* stopnet API reference: starts Swagger UI (#swagger-ui) or ReDoc (#redoc) on the page's OpenAPI URL.
 *
 * Both are served from this site (web/docs.py). Nothing is asked of any other host: Swagger UI's
 * online validator badge is off (validatorUrl null), ReDoc's fonts are the page's own.
 */
(function () {
  "use strict";

  function start() {
    var swagger = document.getElementById("swagger-ui");
    if (swagger && window.SwaggerUIBundle) {
      window.SwaggerUIBundle({
        url: swagger.getAttribute("data-openapi-url"),
        domNode: swagger,
        presets: [window.SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
        deepLinking: true,
        validatorUrl: null,
        tryItOutEnabled: false,
        withCredentials: true
      });
    }
    var redoc = document.getElementById("redoc");
    if (redoc && window.Redoc) {
      window.Redoc.init(redoc.getAttribute("data-openapi-url"), {
        hideDownloadButton: false,
        expandResponses: "200,201",
        theme: { typography: { fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" } }
      }, redoc);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
