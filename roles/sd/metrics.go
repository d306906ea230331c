package sd

import "github.com/prometheus/client_golang/prometheus"

// Error sources, the values of the `source` label of gvp_sd_errors_total.
const (
	sourceRegistry  = "registry"
	sourceConfigsrv = "configsrv"
	sourceInventory = "inventory"
)

// metrics are sd's Prometheus metrics.
type metrics struct {
	syncRuns       *prometheus.CounterVec
	added          prometheus.Counter
	updated        prometheus.Counter
	removed        prometheus.Counter
	errors         *prometheus.CounterVec
	lastSuccess    prometheus.Gauge
	members        prometheus.Gauge
	instances      prometheus.Gauge
	provisioned    prometheus.Counter
	invalidFiles   prometheus.Counter
	inventoryFiles prometheus.Gauge
}

// newMetrics creates the metrics and registers them on reg unless reg is nil.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		syncRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_sd_sync_runs_total", Help: "Pool sync passes by result (ok, error, skipped while the registry is unavailable)."},
			[]string{"result"}),
		added: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_sd_members_added_total", Help: "MCP members added to the pool."}),
		updated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_sd_members_updated_total", Help: "Managed MCP members whose address, transport, capacity or labels changed."}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_sd_members_removed_total", Help: "Managed MCP members removed from the pool (gone or critical)."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_sd_errors_total", Help: "Errors by source: registry, configsrv, inventory."},
			[]string{"source"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gvp_sd_last_sync_success_timestamp_seconds", Help: "Unix time of the last successful pool sync."}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gvp_sd_managed_members", Help: "Members of the pool managed by sd after the last sync."}),
		instances: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gvp_sd_registry_instances", Help: "Passing instances in the registry at the last query."}),
		provisioned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_sd_tenants_provisioned_total", Help: "Tenants created or changed from the inventory."}),
		invalidFiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_sd_inventory_invalid_total", Help: "Inventory files rejected (unreadable, invalid, or refused by configsrv); counted once per content."}),
		inventoryFiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gvp_sd_inventory_files", Help: "Inventory files found at the last scan."}),
	}
	for _, r := range []string{"ok", "error", "skipped"} {
		m.syncRuns.WithLabelValues(r)
	}
	for _, s := range []string{sourceRegistry, sourceConfigsrv, sourceInventory} {
		m.errors.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.syncRuns, m.added, m.updated, m.removed, m.errors, m.lastSuccess, m.members,
			m.instances, m.provisioned, m.invalidFiles, m.inventoryFiles)
	}
	return m
}
