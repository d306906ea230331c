function where() { return 'base--090'; }
function triple(x) { return 3 * x; }
