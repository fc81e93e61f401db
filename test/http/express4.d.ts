// Express 4 is installed under the alias `express4`; its API is the subset of
// Express 5's types these tests use.
declare module 'express4' {
  import express = require('express');
  export = express;
}
