// node-postgres probe for drivers_diff.py: new Client({connectionString: url}) as an app does,
// then SELECT 1. Prints OK (exit 0) or ERROR ... (exit 1); an uncaught exception (pg 8.8's
// ssl=false crash) exits non-zero with its stack on stderr. Adapted from
// notes/dialects/clients/nodepgcheck.js.
'use strict'
const { Client } = require('pg')
const timer = setTimeout(() => { console.log('ERROR timeout'); process.exit(1) }, 8000)
let client
try {
  client = new Client({ connectionString: process.argv[2] })
} catch (e) {
  console.log('ERROR construct:', (e && e.message) || e); process.exit(1)
}
client.on('error', () => {})
client.connect()
  .then(() => client.query('SELECT 1'))
  .then((r) => {
    console.log('OK', JSON.stringify(r.rows)); clearTimeout(timer)
    return client.end().then(() => process.exit(0))
  })
  .catch((e) => {
    console.log('ERROR' + (e && e.code ? ` [${e.code}]` : ''), (e && e.message) || e)
    process.exit(1)
  })
