// The Argo CD health-check runner's module: gopher-lua at the version Argo CD embeds.
module aurora.health/hack/argocd-health

go 1.24.0

require github.com/yuin/gopher-lua v1.1.2
