import './matchers.js';
