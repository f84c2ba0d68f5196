// Qiao's GraphiQL page (core/web/graphiql.html loads this after React and GraphiQL).
// Requests go to the address the page was served from; the token is pasted into the
// Headers tab and stays in the browser tab unless GraphiQL's settings are told to keep it.
(function () {
  "use strict";
  var START = [
    "# Qiao's GraphQL API. Requests need a token ('qiao token create",
    "# --user NAME' makes one): paste this into Headers below,",
    '#   {"Authorization": "Bearer <token>"}',
    "# then reload the schema (\u21BB at the bottom left) for the docs",
    "# and completion, and run a query with Ctrl+Enter or \u25B6.",
    "",
    "{",
    "  me {",
    "    username",
    "    displayName",
    "  }",
    "}",
    "",
  ].join("\n");
  var endpoint = window.location.origin + window.location.pathname;
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: endpoint }),
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      defaultQuery: START,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      showPersistHeadersSettings: true,
    })
  );
})();
