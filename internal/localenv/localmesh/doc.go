// Package localmesh stands in, on one machine, for what a cluster's pods
// would run: istiod as a process for its Deployment, workloads as gRPC
// servers registered with Istio as WorkloadEntries, the telemetry their
// sidecars would export, and a client that routes through istiod's xDS as a
// proxyless gRPC application does. `kubist dev` and the tests use it.
package localmesh
