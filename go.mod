module github.com/modemguard/modemguard

go 1.26.0

require (
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/tools v0.52.0
)

require go.uber.org/goleak v1.3.0
