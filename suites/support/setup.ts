import '../../harness/testing/matchers.js';
