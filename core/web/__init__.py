"""What Qiao serves to browsers: GraphiQL's page and the files it loads, all from Qiao itself.

No page refers to another host, so GraphiQL works on networks with no way out
(docs/web-assets.md, docs/deploy-airgapped.md).
"""
