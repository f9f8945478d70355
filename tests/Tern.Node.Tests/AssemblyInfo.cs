// Each test here starts real node processes; running them one at a time keeps a 2-core
// machine from timing them out while the other test assemblies run.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
